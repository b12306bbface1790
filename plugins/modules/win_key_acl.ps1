#!powershell

# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._RobotCertKeyAcl

$spec = @{
    options = @{
        thumbprint = @{ type = 'str'; required = $true }
        store_location = @{ type = 'str'; default = 'LocalMachine'; choices = 'LocalMachine', 'CurrentUser' }
        store_name = @{ type = 'str'; default = 'My' }
        users = @{ type = 'list'; elements = 'str'; required = $true }
        rights = @{ type = 'str'; default = 'read'; choices = 'read', 'full_control' }
        state = @{ type = 'str'; default = 'present'; choices = 'present', 'absent' }
        exact = @{ type = 'bool'; default = $false }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$thumbprint = ($module.Params.thumbprint -replace '[\s:]', '').ToUpperInvariant()
$storeLocation = $module.Params.store_location
$storeName = $module.Params.store_name
$users = [string[]]@($module.Params.users)
$rights = $module.Params.rights
$state = $module.Params.state
$exact = $module.Params.exact

Function Get-StoreCertificate {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [string]
        $Location,

        [Parameter(Mandatory = $true)]
        [string]
        $Name,

        [Parameter(Mandatory = $true)]
        [string]
        $Thumbprint
    )

    $store = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList @(
        $Name,
        [System.Security.Cryptography.X509Certificates.StoreLocation]$Location
    )
    $openFlags = [System.Security.Cryptography.X509Certificates.OpenFlags]'ReadOnly, OpenExistingOnly'
    try {
        $store.Open($openFlags)
        $found = $store.Certificates.Find(
            [System.Security.Cryptography.X509Certificates.X509FindType]::FindByThumbprint, $Thumbprint, $false)
        if ($found.Count -gt 0) {
            $found[0]
        }
    }
    finally {
        $store.Close()
    }
}

$module.Result.thumbprint = $thumbprint
$module.Result.store = "$storeLocation\$storeName"

if ($thumbprint -notmatch '^[0-9A-F]{40}$') {
    $module.FailJson("thumbprint '$($module.Params.thumbprint)' is not 40 hexadecimal digits (a SHA-1 thumbprint)")
}
if ($users.Count -eq 0) {
    $module.FailJson('users is empty; name at least one account or SID')
}

try {
    $certificate = Get-StoreCertificate -Location $storeLocation -Name $storeName -Thumbprint $thumbprint
}
catch {
    $module.FailJson("cannot open the certificate store $storeLocation\$storeName`: $($_.Exception.Message)", $_)
}
if ($null -eq $certificate) {
    $module.FailJson("certificate $thumbprint not found in $storeLocation\$storeName; import it first")
}
if (-not $certificate.HasPrivateKey) {
    $module.FailJson("key missing: the certificate $thumbprint in $storeLocation\$storeName has no private key; " +
        "import it again with its key")
}

$accessParams = @{
    Module = $module
    Certificate = $certificate
    Store = "$storeLocation\$storeName"
    Users = $users
    Rights = $rights
    State = $state
    Exact = $exact
    CheckMode = $module.CheckMode
}
try {
    $access = Set-RobotCertKeyAccess @accessParams
}
catch {
    $module.FailJson($_.Exception.Message, $_)
}

foreach ($warning in $access.warnings) {
    $module.Warn($warning)
}
$module.Result.changed = $access.changed
$module.Result.key_provider = $access.key_provider
$module.Result.key_name = $access.key_name
$module.Result.key_storage = $access.key_storage
$module.Result.machine_key = $access.machine_key
$module.Result.before = $access.before
$module.Result.after = $access.after
$module.Diff.before = @{ aces = $access.before }
$module.Diff.after = @{ aces = $access.after }

$module.ExitJson()
